#!/usr/bin/env python3
"""Build kebun(8) from its template and `kebun --config-reference`.

The key table is the one docs/CONFIG.md embeds (both come from the key
table in config/keys.c), so the man page never disagrees with the docs.

usage: man.py TEMPLATE KEBUN VERSION CONFIG-PATH OUTPUT
"""
import re
import subprocess
import sys
import time


def roff_text(s):
    """Markdown inline text to roff: `code` in bold, escapes."""
    s = s.replace("\\", "\\e").replace("-", "\\-")
    s = re.sub(r"`([^`]*)`", lambda m: "\\fB" + m.group(1) + "\\fR", s)
    s = s.replace("\u2026", "...")
    return s


def keys_section(reference):
    out = []
    for line in reference.splitlines():
        if line.startswith("### "):
            out.append(".SS " + roff_text(line[4:].strip()))
        elif line.startswith("| `"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) < 4:
                continue
            name, typ, default, doc = cells[0], cells[1], cells[2], " | ".join(cells[3:])
            out.append(".TP")
            out.append("%s (%s; %s)" % (roff_text(name), roff_text(typ),
                                        roff_text(default if default != "required"
                                                  else "required")))
            text = roff_text(doc)
            # A line starting with a dot or quote would be a roff request.
            if text[:1] in (".", "'"):
                text = "\\&" + text
            out.append(text)
    return "\n".join(out)


def main():
    template, kebun, version, config, output = sys.argv[1:6]
    ref = subprocess.run([kebun, "--config-reference"], check=True, capture_output=True,
                         text=True).stdout
    page = open(template).read()
    page = page.replace("@KEYS@", keys_section(ref))
    page = page.replace("@VERSION@", version).replace("@CONFIG@", config)
    page = page.replace("@DATE@", time.strftime("%Y-%m-%d", time.gmtime(
        int(__import__("os").environ.get("SOURCE_DATE_EPOCH", time.time())))))
    open(output, "w").write(page)


if __name__ == "__main__":
    main()
