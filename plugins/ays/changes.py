"""
The writes the families share, on the write sequence of ``plugins.ays.runs``:
install a new service (its name checked free under the write lock, what a
failed install leaves undone), run one action of a service and wait for
it, forget a service.
"""

from __future__ import annotations

from typing import Any

from plugins.ays import blueprints
from plugins.ays.blueprints import Action
from plugins.ays.client import AysClient
from plugins.ays.lookups import Lookups
from plugins.ays.runs import Finisher, Write, Writer


class Changes:
    """
    :param client: the AYS client.
    :param writer: the repository's write sequence.
    :param lookups: the service lookups (name checks).
    """

    def __init__(self, client: AysClient, writer: Writer, lookups: Lookups) -> None:
        self.client = client
        self.writer = writer
        self.lookups = lookups

    def forget(self, role: str, name: str) -> Finisher:
        """:returns: what deletes service ``role!name`` from AYS when awaited."""
        async def forget() -> None:
            await self.client.delete_service(role, name)

        return forget

    async def create(self, role: str, name: str, content: dict[str, Any], what: str,
                     undo: Finisher | None = None, undo_spec: dict[str, Any] | None = None) -> None:
        """
        A create: the blueprint installs service ``role!name``, whose name
        must be free (checked under the write lock).

        :param content: the blueprint.
        :param what: the resource, for the 409 message.
        :param undo: what a failed install leaves is undone by (default:
            the service is forgotten).
        :param undo_spec: ``undo`` written down, for a daemon that restarts
            (``AysBackend.finisher``).
        :raises Conflict: the name is taken.
        :raises BackendError: the run failed the install.
        :raises BackendTimeout: the run did not end in time.
        """
        async def check() -> None:
            await self.lookups.absent(role, name, what)

        write = Write(role, name, "install", content, ours=(Action(role, name, "install"),),
                      on_failure=undo or self.forget(role, name),
                      on_failure_spec=undo_spec if undo is not None else {"forget": [role, name]})
        await self.writer.apply(write, check)

    async def act(self, actor: str, name: str, action: str, label: str | None = None,
                  verb: str | None = None, force: bool = True,
                  then_forget: str | None = None) -> None:
        """
        Run one action of one service and wait for it.

        :param label: the blueprint name's first part (default: the role).
        :param verb: the blueprint name's third part (default: the action).
        :param then_forget: the role of a service to forget once the action
            succeeded (the same name).
        :raises BackendError: the run failed the action.
        :raises BackendTimeout: the run did not end in time.
        """
        step = Action(actor, name, action, force=force)
        write = Write(label or actor.split(".")[0], name, verb or action,
                      blueprints.actions_only(step), ours=(step,))
        if then_forget is not None:
            write.on_success = self.forget(then_forget, name)
            write.on_success_spec = {"forget": [then_forget, name]}
        await self.writer.apply(write)
