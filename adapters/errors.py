"""The one error type adapters raise for problems the user can fix."""


class SetupError(RuntimeError):
    """A missing library, model, device or key. The message is one actionable line, printed
    without a traceback by the CLI."""
