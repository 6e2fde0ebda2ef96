"""Theano's tutorial, "Profiling Theano function": profile=True and the summary tables."""
import io

import numpy
import theano
import theano.tensor as T

x, y = T.dvectors("x", "y")
f = theano.function([x, y], [T.exp(x) + y, T.dot(x, y)], profile=True)
data = numpy.random.rand(100000)
for _ in range(20):
    f(data, data)
assert f.profile is not None
out = io.StringIO()
f.profile.summary(file=out)
text = out.getvalue()
assert "Class" in text and "Apply" in text, text
print(text)
print("ok")
