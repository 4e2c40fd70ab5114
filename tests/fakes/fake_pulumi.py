"""A stand-in `pulumi` executable for testing the Automation API wiring without the real CLI.

The Automation API runs `pulumi <args>` as a subprocess; this script answers the commands azcluster uses
(version, stack select/init/ls/export/import/output/history, preview, up, destroy, refresh, cancel) from a
scenario file and records every call (argv, working directory, the environment variables that matter),
so tests check what the real adapter asked for: stack name, secrets provider, backend URL, work dir, flags.

Engine events are written to the `--event-log` file the Automation API passes (the file form it uses for
CLI versions up to 3.205), ending with the cancel event the real CLI writes. Files live in
$FAKE_PULUMI_DIR: scenario.json (input), calls.jsonl (output), stacks.json (stacks created so far).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ENV_KEYS = (
    "PULUMI_BACKEND_URL",
    "PULUMI_CONFIG_PASSPHRASE",
    "PULUMI_CONFIG_PASSPHRASE_FILE",
    "PULUMI_SKIP_UPDATE_CHECK",
    "PULUMI_AUTOMATION_API",
    "AZCLUSTER_STACK_FILE",
)
HISTORY = {
    "kind": "update",
    "startTime": "2026-03-01T10:00:00.000Z",
    "message": "",
    "environment": {},
    "config": {},
    "result": "succeeded",
    "endTime": "2026-03-01T10:05:00.000Z",
    "resourceChanges": {"create": 3},
}


def main(argv: list[str]) -> int:
    home = Path(os.environ["FAKE_PULUMI_DIR"])
    scenario = json.loads((home / "scenario.json").read_text())
    args = [a for a in argv if a != "--non-interactive"]
    call = {"argv": args, "cwd": os.getcwd(), "env": {k: os.environ.get(k) for k in ENV_KEYS}}
    stack = _flag(args, "--stack")
    stacks_file = home / "stacks.json"
    stacks = json.loads(stacks_file.read_text()) if stacks_file.exists() else list(scenario.get("stacks", []))
    words = [a for a in args if not a.startswith("-")][:2]
    command = " ".join(words[:2]) if words and words[0] == "stack" else (words[0] if words else "")
    if command == "stack import":
        call["imported"] = json.loads(Path(_flag(args, "--file")).read_text())
    with (home / "calls.jsonl").open("a") as log:
        log.write(json.dumps(call) + "\n")

    response = scenario.get("responses", {}).get(command, {})
    if command == "version":
        print(scenario.get("version", "v3.200.0"))
        return 0
    if command == "stack select":
        if stack not in stacks:
            print(f"error: no stack named '{stack}' found", file=sys.stderr)
            return 255
        return 0
    if command == "stack init":
        stacks.append(args[args.index("init") + 1])
        stacks_file.write_text(json.dumps(stacks))
        return 0
    if command in ("preview", "up", "destroy", "refresh"):
        log_path = _flag(args, "--event-log")
        events = response.get("events")
        if events is None:
            events = [{"summaryEvent": {"resourceChanges": scenario.get("changes", {"create": 3})}}]
        if log_path:
            with open(log_path, "a", encoding="utf-8") as out:
                for number, event in enumerate([*events, {"cancelEvent": {}}]):
                    out.write(
                        json.dumps({"sequence": number, "timestamp": 1_770_000_000 + number, **event}) + "\n"
                    )
    elif command == "stack output":
        outputs = scenario.get("outputs", {})
        shown = {
            key: (item["value"] if "--show-secrets" in args or not item.get("secret") else "[secret]")
            for key, item in outputs.items()
        }
        print(json.dumps(shown))
    elif command == "stack history":
        print(json.dumps(scenario.get("history", [HISTORY])))
    elif command == "stack export":
        print(json.dumps({"version": 3, "deployment": scenario.get("deployment", {"resources": []})}))
    elif command == "stack ls":
        print(json.dumps(scenario.get("ls", [])))
    sys.stdout.write(response.get("stdout", ""))
    sys.stderr.write(response.get("stderr", ""))
    return int(response.get("code", 0))


def _flag(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args and args.index(name) + 1 < len(args) else None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
