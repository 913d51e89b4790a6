"""Why a listener could not be opened, in words an operator can act on: `camgrid serve` prints
this instead of "[Errno 98] Address already in use" without saying which of its ports."""

from __future__ import annotations

import errno


class ListenError(OSError):
    """An OSError (errno kept) whose text is the whole explanation."""

    def __str__(self) -> str:
        return str(self.strerror)


def bind_error(what: str, host: str, port: int, exc: OSError, *, setting: str) -> ListenError:
    """`exc` from binding `what` (e.g. "SIP UDP") to host:port, as an OSError naming the listener,
    the cause and the setting that chooses it (e.g. "sip.port")."""
    where = f"{what} {host}:{port}"
    section = setting.split(".")[0]
    if exc.errno == errno.EADDRINUSE:
        text = (f"{where} is already in use: another program (or another camgrid) listens there; `ss -lntup` names "
                f"it. Stop it or choose another port ({setting})")
    elif exc.errno == errno.EACCES:
        text = (f"{where}: permission denied: ports below 1024 need root or CAP_NET_BIND_SERVICE; choose a port "
                f"above 1023 ({setting})")
    elif exc.errno == errno.EADDRNOTAVAIL:
        text = f"{where}: this machine has no address {host}; set {section}.host to one of its addresses or 0.0.0.0"
    else:
        text = f"{where}: {exc.strerror or exc}"
    return ListenError(exc.errno, text)
