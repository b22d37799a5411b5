#!/usr/bin/env python3
"""Embeds the OpenAPI document and the /docs page into a C++ source file.

usage: embed_openapi.py OUTPUT.cc docs/api/openapi.json VERSION

Defines pggitops::server::OpenApiJson() (the document, minified, with
info.version set to VERSION) and DocsPageHtml() (a page listing every
operation and schema, rendered here: no scripts, no external assets), both
declared in server/routes/docs_routes.h. The daemon needs no files at run
time, and a document that is not valid JSON fails the build.
"""
import html
import json
import sys

DELIMITER = "pggitdoc"
METHODS = ("get", "put", "post", "patch", "delete")
STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:980px;
padding:1em 1.5em;color:#1d232a;background:#fff}
h1{font-size:1.6em;margin:.3em 0}h2{margin-top:1.6em;border-bottom:1px solid #ccd}
.op{border:1px solid #d5d9e0;border-radius:6px;margin:.6em 0;padding:.5em .8em}
.m{display:inline-block;min-width:4.5em;font-weight:600;text-transform:uppercase}
.get{color:#0b6e2f}.post{color:#1f4fa3}.put,.patch{color:#8a5a00}
.delete{color:#a11}code,pre{font:13px ui-monospace,monospace}
pre{background:#f5f6f8;padding:.6em;overflow-x:auto;border-radius:4px}
table{border-collapse:collapse;margin:.3em 0}td,th{border:1px solid #dde;
padding:.2em .5em;text-align:left;vertical-align:top}.scope{color:#555}
@media(prefers-color-scheme:dark){body{background:#15181c;color:#dde}
pre{background:#22262c}.op{border-color:#333a44}}
"""


def esc(s):
    return html.escape(str(s), quote=True)


def schema_name(schema):
    if not isinstance(schema, dict):
        return ""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f'<a href="#schema-{esc(name)}">{esc(name)}</a>'
    return esc(schema.get("type", "object"))


def content_line(content):
    parts = []
    for ctype, media in (content or {}).items():
        parts.append(f"<code>{esc(ctype)}</code> {schema_name(media.get('schema'))}")
    return "; ".join(parts)


def render(doc):
    comp = doc.get("components", {})
    shared = comp.get("responses", {})
    out = ["<!doctype html><html lang=en><head><meta charset=utf-8>",
           "<meta name=viewport content='width=device-width,initial-scale=1'>",
           f"<title>{esc(doc['info']['title'])} API</title><style>{STYLE}</style>",
           "</head><body>",
           f"<h1>{esc(doc['info']['title'])} API <small>{esc(doc['info']['version'])}</small></h1>",
           f"<p>{esc(doc['info'].get('description', ''))}</p>",
           "<p>The machine-readable document: <a href='/openapi.json'>/openapi.json</a> "
           "(OpenAPI 3.1; load it into any OpenAPI tool).</p>"]
    for tag in [t["name"] for t in doc.get("tags", [])]:
        out.append(f"<h2 id='tag-{esc(tag)}'>{esc(tag)}</h2>")
        for path, item in doc["paths"].items():
            for method in METHODS:
                op = item.get(method)
                if not op or tag not in op.get("tags", []):
                    continue
                out.append(f"<div class=op id='{esc(op.get('operationId', ''))}'>")
                out.append(f"<span class='m {method}'>{method}</span> <code>{esc(path)}</code>"
                           f" — {esc(op.get('summary', ''))} <span class=scope>"
                           f"(scope {esc(op.get('x-scope', ''))})</span>")
                if op.get("description"):
                    out.append(f"<p>{esc(op['description'])}</p>")
                params = item.get("parameters", []) + op.get("parameters", [])
                if params:
                    out.append("<table><tr><th>parameter</th><th>in</th><th>type</th><th>meaning</th></tr>")
                    for p in params:
                        out.append(f"<tr><td><code>{esc(p['name'])}</code></td><td>{esc(p['in'])}</td>"
                                   f"<td>{esc(json.dumps(p.get('schema', {})))}</td>"
                                   f"<td>{esc(p.get('description', ''))}</td></tr>")
                    out.append("</table>")
                if op.get("requestBody"):
                    req = op["requestBody"]
                    out.append(f"<p>Body ({'required' if req.get('required') else 'optional'}): "
                               f"{content_line(req.get('content'))}</p>")
                out.append("<table><tr><th>status</th><th>answer</th></tr>")
                for code, r in op.get("responses", {}).items():
                    if "$ref" in r:
                        r = shared[r["$ref"].rsplit("/", 1)[-1]]
                    out.append(f"<tr><td>{esc(code)}</td><td>{esc(r.get('description', ''))} "
                               f"{content_line(r.get('content'))}</td></tr>")
                out.append("</table></div>")
    out.append("<h2 id=schemas>Schemas</h2>")
    for name, schema in comp.get("schemas", {}).items():
        out.append(f"<h3 id='schema-{esc(name)}'>{esc(name)}</h3>")
        out.append(f"<pre>{esc(json.dumps(schema, indent=2))}</pre>")
    out.append("</body></html>\n")
    return "\n".join(out)


def literal(name, text):
    if f"){DELIMITER}\"" in text:
        sys.exit(f"embed_openapi: {name} contains the raw-string delimiter")
    # Parts below the 65 536 characters a compiler must accept in one
    # literal (clang warns beyond, and adjacent literals count as one),
    # joined once on first use.
    chunks = [text[i:i + 30000] for i in range(0, len(text), 30000)] or [""]
    parts = ",\n".join(f'      R"{DELIMITER}({c}){DELIMITER}"' for c in chunks)
    return (f"absl::string_view {name}() {{\n"
            f"  static constexpr absl::string_view kParts[] = {{\n{parts}}};\n"
            f"  static const std::string* const kText = [] {{\n"
            f"    auto* text = new std::string();\n"
            f"    for (absl::string_view part : kParts) {{\n"
            f"      text->append(part.data(), part.size());\n"
            f"    }}\n"
            f"    return text;\n"
            f"  }}();\n"
            f"  return *kText;\n}}\n\n")


def main():
    out, source, version = sys.argv[1], sys.argv[2], sys.argv[3]
    with open(source, encoding="utf-8") as f:
        doc = json.load(f)
    doc["info"]["version"] = version
    minified = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    with open(out, "w", encoding="utf-8") as f:
        f.write("// Generated by scripts/embed_openapi.py from "
                "docs/api/openapi.json. Do not edit.\n")
        f.write('#include "server/routes/docs_routes.h"\n\n')
        f.write("#include <string>\n\n")
        f.write("namespace pggitops::server {\n\n")
        f.write(literal("OpenApiJson", minified))
        f.write(literal("DocsPageHtml", render(doc)))
        f.write("}  // namespace pggitops::server\n")


if __name__ == "__main__":
    main()
