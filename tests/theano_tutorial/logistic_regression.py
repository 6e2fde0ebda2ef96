"""Theano's tutorial, "A Real Example: Logistic Regression", as written there (random data, 784 features,
weights drawn from randn, the logistic spelt 1 / (1 + exp(-z))), with fewer training steps."""
import numpy
import theano
import theano.tensor as T

rng = numpy.random.RandomState(0)
N = 400  # training sample size
feats = 784  # number of input variables
D = (rng.randn(N, feats), rng.randint(size=N, low=0, high=2))  # generate a dataset: D = (input_values, target_class)
training_steps = 300

x = T.dmatrix("x")
y = T.dvector("y")
w = theano.shared(rng.randn(feats), name="w")
b = theano.shared(0., name="b")
p_1 = 1 / (1 + T.exp(-T.dot(x, w) - b))  # probability that target = 1
prediction = p_1 > 0.5  # the prediction thresholded
xent = -y * T.log(p_1) - (1 - y) * T.log(1 - p_1)  # cross-entropy loss function
cost = xent.mean() + 0.01 * (w ** 2).sum()  # the cost to minimize
gw, gb = T.grad(cost, [w, b])

train = theano.function(inputs=[x, y], outputs=[prediction, xent],
                        updates=((w, w - 0.1 * gw), (b, b - 0.1 * gb)))
predict = theano.function(inputs=[x], outputs=prediction)
for i in range(training_steps):
    pred, err = train(D[0], D[1])
# saturated at the start (|z| ~ 30): the logistic is recognised and its logs made softplus, as in Theano
assert numpy.isfinite(err).all(), err
accuracy = (predict(D[0]) == D[1]).mean()
assert accuracy > 0.95, accuracy
print("ok", accuracy)
