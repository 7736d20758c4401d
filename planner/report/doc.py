"""A tiny document model written out as Markdown and as a standalone HTML page."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from planner.io import write_atomic


@dataclass
class Document:
    """Headings, paragraphs, tables and images, in order."""

    title: str
    blocks: list[tuple[str, object]] = field(default_factory=list)

    def heading(self, text: str) -> None:
        """A section heading."""
        self.blocks.append(("h2", text))

    def para(self, text: str) -> None:
        """A paragraph of plain text."""
        self.blocks.append(("p", text))

    def table(self, frame: pd.DataFrame, floatfmt: str = ",.4g") -> None:
        """A table (numbers formatted with ``floatfmt``)."""
        self.blocks.append(("table", _format(frame, floatfmt)))

    def image(self, path: Path, caption: str) -> None:
        """A PNG next to the report (referenced by file name)."""
        self.blocks.append(("img", (path.name, caption)))

    def markdown(self) -> str:
        """The document as GitHub Markdown."""
        out = [f"# {self.title}", ""]
        for kind, value in self.blocks:
            if kind == "h2":
                out += [f"## {value}", ""]
            elif kind == "p":
                out += [str(value), ""]
            elif kind == "table" and isinstance(value, pd.DataFrame):
                cols = [str(c) for c in value.columns]
                out.append("| " + " | ".join(cols) + " |")
                out.append("|" + "|".join("---" for _ in cols) + "|")
                for row in value.itertuples(index=False):
                    out.append("| " + " | ".join(str(v).replace("|", "/") for v in row) + " |")
                out.append("")
            elif kind == "img" and isinstance(value, tuple):
                name, caption = value
                out += [f"![{caption}]({name})", "", f"*{caption}*", ""]
        return "\n".join(out)

    def html(self) -> str:
        """The document as one HTML page (images referenced by file name)."""
        esc = html.escape
        body = [f"<h1>{esc(self.title)}</h1>"]
        for kind, value in self.blocks:
            if kind == "h2":
                body.append(f"<h2>{esc(str(value))}</h2>")
            elif kind == "p":
                body.append(f"<p>{esc(str(value))}</p>")
            elif kind == "table" and isinstance(value, pd.DataFrame):
                head = "".join(f"<th>{esc(str(c))}</th>" for c in value.columns)
                rows = "".join(
                    "<tr>" + "".join(f"<td>{esc(str(v))}</td>" for v in row) + "</tr>"
                    for row in value.itertuples(index=False)
                )
                body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
            elif kind == "img" and isinstance(value, tuple):
                name, caption = value
                body.append(
                    f'<figure><img src="{esc(name)}" alt="{esc(caption)}">'
                    f"<figcaption>{esc(caption)}</figcaption></figure>"
                )
        style = (
            "body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}"
            "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
            "padding:2px 6px;text-align:right}th{background:#eee}img{max-width:100%}"
        )
        return (
            f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(self.title)}</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n"
        )

    def write(self, out: Path, stem: str = "report") -> list[Path]:
        """Write ``stem.md`` and ``stem.html`` under ``out`` (atomically)."""
        out.mkdir(parents=True, exist_ok=True)
        md, page = out / f"{stem}.md", out / f"{stem}.html"
        write_atomic(md, self.markdown())
        write_atomic(page, self.html())
        return [md, page]


def _format(frame: pd.DataFrame, floatfmt: str) -> pd.DataFrame:
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            out[col] = [format(v, floatfmt) if pd.notna(v) else "" for v in out[col]]
    return out
