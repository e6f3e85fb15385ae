"""`studio versions [list|rename|delete]`: the lineage, and changing one version in it.

Same contract as the rest of the command line: handlers parse, call the project API and print;
a problem the user can fix is a StudioError (one sentence, exit code 2) raised before anything
is written. A delete only happens with ``--yes``: without it the command says what would go.
"""

from __future__ import annotations

import argparse

from studio.cli_args import emit, json_arg, project_arg
from studio.errors import StudioError
from studio.tables import human_bytes

ACTIONS = ("list", "rename", "delete")


def register_versions(sub) -> None:
    p = sub.add_parser(
        "versions",
        help="the project's model versions, as a lineage tree with key figures; "
        "`studio versions rename|delete VERSION` changes one",
    )
    p.add_argument("action", nargs="?", choices=ACTIONS, default="list", help="what to do (default: list)")
    p.add_argument(
        "version", nargs="?", metavar="VERSION", help="for rename and delete: a version id (v3) or name"
    )
    p.add_argument("name", nargs="?", metavar="NAME", help="for rename: the new name")
    project_arg(p)
    p.add_argument(
        "--yes", action="store_true", help="for delete: delete it (without this, only say what would go)"
    )
    json_arg(p)
    p.set_defaults(handler=_cmd_versions)


def _cmd_versions(args: argparse.Namespace) -> int:
    from studio.project import Project

    _check_words(args)
    with Project.open(args.project) as project:
        if args.action == "list":
            from studio.cli_views import versions_text

            emit(args, project.summary(), versions_text)
            return 0
        version = project.store.find_version(args.version)
        if args.action == "rename":
            renamed = project.rename_version(version.id, args.name)
            emit(args, {**renamed.to_dict(), "previous_name": version.name}, renamed_text)
            return 0
        if not args.yes:
            raise StudioError(would_delete_text(project.preview_delete_version(version.id).to_dict()))
        emit(args, project.delete_version(version.id).to_dict(), deleted_text)
    return 0


def _check_words(args: argparse.Namespace) -> None:
    """Refuse a word too many or too few before the project is opened: `delete v3 v4` deletes nothing."""
    usage = {
        "list": "studio versions --project DIR",
        "rename": "studio versions rename VERSION NAME --project DIR",
        "delete": "studio versions delete VERSION --project DIR --yes",
    }[args.action]
    given = [word for word in (args.version, args.name) if word is not None]
    wanted = {"list": 0, "rename": 2, "delete": 1}[args.action]
    if len(given) > wanted:
        raise StudioError(f"'{given[wanted]}' is one word too many for {args.action}: {usage}")
    if len(given) < wanted:
        missing = f"name the version to {args.action}" if not given else "give the new name"
        raise StudioError(f"{missing}: {usage}")


def renamed_text(d: dict) -> str:
    return f"renamed v{d['id']} to '{d['name']}'"


def deleted_text(d: dict) -> str:
    return f"deleted v{d['id']} '{d['name']}' ({_measurements(d)}, {_files(d, 'freed')})"


def would_delete_text(d: dict) -> str:
    return (
        f"this would delete v{d['id']} '{d['name']}' with {_measurements(d)} "
        f"({_files(d, 'to free')}); add --yes to delete it"
    )


def _measurements(d: dict) -> str:
    count = d["measurements_removed"]
    return f"{count or 'no'} measurement{'' if count == 1 else 's'}"


def _files(d: dict, done: str) -> str:
    if d["artifact_removed"]:
        return f"{human_bytes(d['bytes_freed'])} {done}"
    users = [f"v{version_id}" for version_id in d["shared_with"]]
    if not users:
        return f"no files {done}"  # its folder was missing, or could not be removed
    return f"its files stay: {', '.join(users)} use{'s' if len(users) == 1 else ''} them"
