"""Regenerate ``mixbridge.json``, the Open Stage Control session for the /mixbridge surface server.

Run: python reaper_scripts/surfaces/make_open_stage_control.py  (writes next to itself)
Start Open Stage Control with ``--send 127.0.0.1:9100 --osc-port 9101`` and press "Connect".
"""
import json
from pathlib import Path

SLOTS = 8
SURFACE_PORT = 9101  # Open Stage Control's --osc-port: where MixBridge sends feedback


def text(wid, address, top, left, width, height=40, label=False):
    return {"type": "text", "id": wid, "top": top, "left": left, "width": width, "height": height,
            "address": address, "preArgs": [], "target": [], "label": label, "value": ""}


def button(wid, label, address, top, left, width, pre_args=(), on=1, height=40):
    return {"type": "button", "id": wid, "label": label, "top": top, "left": left, "width": width,
            "height": height, "mode": "tap", "on": on, "off": 0, "address": address,
            "preArgs": list(pre_args), "target": []}


widgets = [
    button("connect", "Connect", "/mixbridge/subscribe", 0, 0, 100, on=SURFACE_PORT),
    button("dump", "Refresh", "/mixbridge/dump", 0, 110, 100),
    button("ab", "A/B", "/mixbridge/ab", 0, 220, 80),
    text("ab_state", "/mixbridge/ab", 0, 310, 50),
    button("accept_all", "Accept all", "/mixbridge/accept/all", 0, 370, 110),
    button("reject_all", "Reject all", "/mixbridge/reject/all", 0, 490, 110),
    button("revert", "Revert", "/mixbridge/revert", 0, 610, 90),
    button("reanalyse", "Re-analyse", "/mixbridge/reanalyse", 0, 710, 110),
    {"type": "fader", "id": "amount", "label": "Amount", "top": 50, "left": 0, "width": 600, "height": 50,
     "horizontal": True, "range": {"min": 0, "max": 1}, "address": "/mixbridge/amount", "preArgs": [],
     "target": []},
    text("pending_total", "/mixbridge/pending", 50, 610, 90),
    text("status", "/mixbridge/status", 110, 0, 820),
]
for n in range(1, SLOTS + 1):
    top = 160 + (n - 1) * 50
    base = f"/mixbridge/track/{n}"
    widgets += [
        text(f"name_{n}", f"{base}/name", top, 0, 140),
        text(f"prov_{n}", f"{base}/provenance", top, 150, 70),
        text(f"lufs_{n}", f"{base}/lufs", top, 230, 70),
        text(f"pending_{n}", f"{base}/pending", top, 310, 40),
        text(f"finding_{n}", f"{base}/finding", top, 360, 260),
        button(f"accept1_{n}", "Accept 1st", "/mixbridge/accept/index", top, 630, 90, pre_args=[n, 1]),
        button(f"accept_{n}", "Accept all", "/mixbridge/track/accept", top, 730, 90, pre_args=[n]),
        button(f"reject_{n}", "Reject all", "/mixbridge/track/reject", top, 830, 90, pre_args=[n]),
    ]

session = {"createdWith": "Open Stage Control", "version": "1.26.2", "type": "session",
           "content": {"type": "root", "id": "root", "layout": "default", "address": "/root", "preArgs": [],
                       "target": [], "tabs": [], "widgets": widgets}}
(Path(__file__).with_name("mixbridge.json")).write_text(json.dumps(session, indent=1) + "\n", encoding="utf-8")
