"""Reading and writing spreadsheets of rows: CSV (UTF-8 with or without BOM, GB18030, UTF-16) and XLSX.

Rows come back as (line number, list of cell values), with the header as line 1 in both
formats, so messages about a row point at what the operator sees in their editor.
Text that a spreadsheet would run as a formula (=, +, -, @ first) is written with a leading
apostrophe in CSV and as a plain string cell in XLSX; `unescape_text` undoes the CSV form.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class TableFormatError(ValueError):
    """A file that cannot be read as a table at all; the message says why."""


def kind_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        return "csv"
    if suffix in (".xlsx", ".xlsm"):
        return "xlsx"
    raise TableFormatError(f"{path.name}: unsupported file type {suffix or '(none)'}; use .csv or .xlsx")


def decode_csv_bytes(data: bytes) -> str:
    """UTF-8 (BOM or not), UTF-16 with BOM, else GB18030 (which covers GB2312 and GBK)."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8):].decode("utf-8", errors="replace")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise TableFormatError(f"the file is neither UTF-8 nor GB18030 (byte {exc.start}); save it as UTF-8 CSV") from None


def read_rows(path: Path) -> Iterator[tuple[int, list[Any]]]:
    """(line, cells) for every row of the first sheet / the CSV, header included (line 1)."""
    if kind_of(path) == "csv":
        yield from _read_csv(path)
    else:
        yield from _read_xlsx(path)


def _read_csv(path: Path) -> Iterator[tuple[int, list[Any]]]:
    text = decode_csv_bytes(path.read_bytes())
    # Excel quoting; only the delimiter varies (Excel writes ';' in some locales, tabs as "text").
    first = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first.count) if any(d in first for d in ",;\t") else ","
    reader = csv.reader(io.StringIO(text, newline=""), csv.excel, delimiter=delimiter)
    start = 1
    try:
        for cells in reader:
            yield start, cells
            start = reader.line_num + 1
    except csv.Error as exc:
        raise TableFormatError(f"line {reader.line_num}: {exc}") from None


def _read_xlsx(path: Path) -> Iterator[tuple[int, list[Any]]]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise TableFormatError(f"{path.name} is not a readable XLSX workbook ({exc})") from None
    try:
        ws = wb.worksheets[0]
        for line, cells in enumerate(ws.iter_rows(values_only=True), start=1):
            yield line, list(cells)
    finally:
        wb.close()


def unescape_text(value: str) -> str:
    """Undo the apostrophe a CSV export puts before text that looks like a formula."""
    if len(value) > 1 and value[0] == "'" and value[1] in FORMULA_START:
        return value[1:]
    return value


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


class TableWriter:
    """Writes sheets to one XLSX workbook, or each sheet to its own CSV file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.kind = kind_of(path)
        self.paths: list[Path] = []
        self._wb: Any = None
        if self.kind == "xlsx":
            from openpyxl import Workbook

            self._wb = Workbook(write_only=True)

    def sheet(self, name: str, header: Sequence[str], rows: Iterable[Sequence[Any]], *, first: bool) -> int:
        """Write one sheet; for CSV the first sheet is `path`, later ones `<stem>-<name>.csv`."""
        if self.kind == "xlsx":
            return self._xlsx_sheet(name, header, rows)
        target = self.path if first else self.path.with_name(f"{self.path.stem}-{name}{self.path.suffix}")
        count = 0
        # UTF-8 with BOM: what spreadsheet programs need to show Chinese text correctly.
        with target.open("w", encoding="utf-8-sig", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            for row in rows:
                writer.writerow([_csv_cell(v) for v in row])
                count += 1
        self.paths.append(target)
        return count

    def _xlsx_sheet(self, name: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

        ws = self._wb.create_sheet(name)
        ws.append(list(header))
        count = 0
        for row in rows:
            out = []
            for v in row:
                if isinstance(v, datetime):
                    v = v.isoformat()
                if isinstance(v, str):
                    v = ILLEGAL_CHARACTERS_RE.sub("", v)
                    if v.startswith("="):  # text, never a formula
                        cell = WriteOnlyCell(ws, value=v)
                        cell.data_type = "s"
                        v = cell
                out.append(v)
            ws.append(out)
            count += 1
        return count

    def close(self) -> None:
        if self._wb is not None:
            self._wb.save(self.path)
            self.paths.append(self.path)
            self._wb = None
