import logging


__version__ = "0.1.0"


class _MissingOptionalKernels(logging.Filter):
    """bitsandbytes warns at import, so on every command, that the optional `kernels` package (a faster CPU path
    for 4-bit layers) is not installed, and falls back to its own code. A new user reads that line as an error; it
    is dropped here (installed before any rs_reward module imports bitsandbytes). Other bitsandbytes warnings pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "kernels" not in record.getMessage()


logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(_MissingOptionalKernels())
