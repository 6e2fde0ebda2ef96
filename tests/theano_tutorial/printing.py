"""Theano's tutorial, "Printing/Drawing Theano graphs": pp, debugprint and pydotprint of the
logistic-regression graph, symbolic and compiled."""
import os
import sys

import numpy
import theano
import theano.tensor as T

out_dir = sys.argv[1]
rng = numpy.random
x = T.matrix("x")
y = T.vector("y")
w = theano.shared(rng.randn(5), name="w")
b = theano.shared(0.0, name="b")
p_1 = 1 / (1 + T.exp(-T.dot(x, w) - b))
prediction = p_1 > 0.5
xent = -y * T.log(p_1) - (1 - y) * T.log(1 - p_1)
cost = xent.mean() + 0.01 * (w ** 2).sum()
gw, gb = T.grad(cost, [w, b])
predict = theano.function(inputs=[x], outputs=prediction)

text = theano.printing.pprint(prediction)
assert text.startswith("gt(") or " > " in text, text
for name in ("x", "w", "b"):
    assert name in text, text
assert theano.pp(prediction) == text

theano.printing.debugprint(prediction)
theano.printing.debugprint(predict)
theano.printing.debugprint(prediction, print_type=True)

for kind in ("symbolic", "compiled"):
    target = os.path.join(out_dir, f"logreg_{kind}.dot")
    theano.printing.pydotprint(predict if kind == "compiled" else prediction, outfile=target, format="dot",
                               var_with_name_simple=True)
    dot = open(target).read()
    assert dot.lstrip().startswith(("digraph", "strict digraph")) and "->" in dot, dot[:200]
print("ok")
