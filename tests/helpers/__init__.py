"""What the tests share: helpers, scenarios and fixtures (registered in conftest.py).

No test lives here, and no test module imports another: what two test
modules need goes here.
"""
