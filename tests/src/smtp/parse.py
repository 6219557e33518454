"""Parses every OUT/*.eml with Python's email package (policy=default, a full MIME parser)
and prints one JSON list: envelope, headers (in order, decoded), text and HTML parts."""

import json
import os
import sys
from email import policy
from email.parser import BytesParser

OUT = sys.argv[1]
mails = []
for name in sorted(os.listdir(OUT)):
    if not name.endswith(".eml"):
        continue
    with open(os.path.join(OUT, name), "rb") as f:
        msg = BytesParser(policy=policy.default).parse(f)
    with open(os.path.join(OUT, name[:-4] + ".json")) as f:
        envelope = json.load(f)
    text = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    mails.append(
        {
            "file": name,
            "envelope_to": envelope["to"],
            "headers": [[k, str(v)] for k, v in msg.items()],
            "content_type": msg.get_content_type(),
            "text": text.get_content() if text else None,
            "html": html.get_content() if html else None,
        }
    )
print(json.dumps(mails))
