"""Errors a device command can end in, with the HTTP status the API answers for each."""


class CommandError(Exception):
    """A device command that could not be carried out: 404 unknown device, 409 offline or
    unreachable, 502 refused by the device, 504 no answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class NoAnswerError(CommandError):
    """The device accepted the request (200 to the MESSAGE) but sent no Response in time."""

    def __init__(self, message: str) -> None:
        super().__init__(504, message)
