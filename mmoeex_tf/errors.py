"""The library's own error types."""


class MMoEExError(ValueError):
    """Raised for invalid arguments, data or configurations.

    It subclasses `ValueError`, so code that already catches `ValueError`
    keeps working; the message always names the offending task, argument or
    value and what was expected.
    """
