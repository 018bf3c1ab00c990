"""fep's exceptions: one class per libfep status (FepStatus), each also a
subclass of the built-in exception a Python caller would expect, so
`except ValueError` and `except fep.ShapeError` both work.

    FepError                          every error below; .status, .message
      FepIOError      (OSError)       FEP_ERROR_IO: a file could not be read or written
      ModelError                      FEP_ERROR_MODEL: the model does not compile, a rule
                                      cannot apply, a module is not a fepc module
      TensorNameError (KeyError)      FEP_ERROR_NAME: no tensor of that name
      ShapeError      (ValueError)    FEP_ERROR_SHAPE: an array or file of the wrong shape
      NumericError    (ArithmeticError) FEP_ERROR_NUMERIC: NaN or Inf appeared
      ArgumentError   (ValueError)    FEP_ERROR_ARGUMENT: an invalid value (batch < 1, an
                                      unknown train key, relax before learn, ...)
        ClosedError                   the module or session was closed
      DtypeError      (TypeError)     an argument of the wrong type (None for a path, a
                                      string or complex array for a tensor)

The message is libfep's in full: for a model error, fepc's diagnostics
(`file:line:col: error: ...`, the source line and a caret).
"""


class FepError(Exception):
    """Base class: `status` is the FepStatus code (0 for errors raised on the
    Python side), `message` the full text."""

    status = 0

    def __init__(self, message, status=None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status

    def __str__(self):
        return self.message


class FepIOError(FepError, OSError):
    status = 1


class ModelError(FepError):
    status = 2


class TensorNameError(FepError, KeyError):
    status = 3


class ShapeError(FepError, ValueError):
    status = 4


class NumericError(FepError, ArithmeticError):
    status = 5


class ArgumentError(FepError, ValueError):
    status = 6


class ClosedError(ArgumentError):
    pass


class DtypeError(FepError, TypeError):
    status = 6


_BY_STATUS = {c.status: c for c in (FepIOError, ModelError, TensorNameError, ShapeError, NumericError,
                                     ArgumentError)}


def raise_for(status, message):
    """Raises the exception for a non-zero FepStatus."""
    cls = _BY_STATUS.get(status, FepError)
    raise cls(message or "libfep failed with status %d" % status, status)
