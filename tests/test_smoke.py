import numpy as np

import arignote.tensor as T
from checks import check


def test_exp_times_y(backend):
    x, y = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    check(lambda a, b: T.exp(a) * b + 1, [x, y], backend, expected=np.exp(x) * y + 1)
