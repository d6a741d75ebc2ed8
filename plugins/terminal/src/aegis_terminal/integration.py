"""Shell integration: how a shell is started so that it prints OSC 133 markers (see :mod:`.osc`).

- **bash** (≥ 4.4): ``bash --rcfile <ours> -i``. Our rc first sources what an interactive bash would
  (``/etc/bash.bashrc`` where Debian's bash does, then ``~/.bashrc``), then adds the hooks *around* the
  user's: a function is put first in ``PROMPT_COMMAND`` (the array form stays an array, the string form a
  string, so the user's own entries keep running after it and it sees the command's ``$?``), and
  ``\\e]133;C`` is appended to ``PS0`` (bash prints it after reading a command line, before running it;
  an empty line prints nothing). ``PS1`` is not touched, so prompts that rewrite it keep working.
- **zsh**: ``ZDOTDIR`` points at a folder of ours whose ``.zshenv``/``.zprofile``/``.zshrc``/``.zlogin``
  source the user's (from the original ``ZDOTDIR`` or ``$HOME``) with ``ZDOTDIR`` set as the user
  expects; after the user's ``.zshrc`` our functions are put first in ``precmd_functions`` and added to
  ``preexec_functions`` (the user's array entries are kept).
- **other shells**: no integration; each :meth:`run <aegis_terminal.runtime.Terminal.run>` is wrapped
  so the markers are printed around the command (``printf '\\033]133;C\\007'; { cmd; }; printf
  '\\033]133;D;%d\\007\\033]133;A\\007' $?`` — POSIX ``sh`` syntax); commands typed by hand there have
  no boundaries.

A command line of several lines is sent as one ``{ …; }`` group (:func:`command_bytes`) so the shell
runs it as one command with one exit status.
"""

from __future__ import annotations

import os
from pathlib import Path

from attrs import frozen

BASH_RC = r"""# aegis-terminal: bash integration (sourced instead of ~/.bashrc; sources it first)
if [ -z "$AEGIS_NO_USER_RC" ]; then
  [ -r /etc/bash.bashrc ] && . /etc/bash.bashrc
  [ -r "$HOME/.bashrc" ] && . "$HOME/.bashrc"
fi
__aegis_precmd() {
  local __aegis_status=$?
  builtin printf '\e]133;E;'
  HISTTIMEFORMAT= builtin history 1
  builtin printf '\a\e]133;D;%s\a\e]133;A\a' "$__aegis_status"
  return $__aegis_status
}
__aegis_prompt() {
  local __aegis_status=$?
  [[ "$PS1" == *'133;B'* ]] || PS1="$PS1"'\[\e]133;B\a\]'
  return $__aegis_status
}
if [[ "$(declare -p PROMPT_COMMAND 2>/dev/null)" == "declare -a"* ]]; then
  PROMPT_COMMAND=(__aegis_precmd "${PROMPT_COMMAND[@]}" __aegis_prompt)
else
  PROMPT_COMMAND=$'__aegis_precmd\n'"${PROMPT_COMMAND:-}"$'\n__aegis_prompt'  # newlines: a trailing ';' stays valid
fi
PS0="${PS0-}"$'\e]133;C\a'
"""

_ZSH_SOURCE = r"""__aegis_zd="$ZDOTDIR"
ZDOTDIR="${AEGIS_USER_ZDOTDIR:-$HOME}"
[[ -z "$AEGIS_NO_USER_RC" && -r "$ZDOTDIR/{file}" ]] && source "$ZDOTDIR/{file}"
AEGIS_USER_ZDOTDIR="$ZDOTDIR"
ZDOTDIR="$__aegis_zd"
unset __aegis_zd
"""

ZSH_RC = r"""# aegis-terminal: zsh integration (ZDOTDIR is ours until the user's .zshrc has run)
ZDOTDIR="${AEGIS_USER_ZDOTDIR:-$HOME}"
[[ -z "$AEGIS_NO_USER_RC" && -r "$ZDOTDIR/.zshrc" ]] && source "$ZDOTDIR/.zshrc"
unset AEGIS_USER_ZDOTDIR
__aegis_precmd() {
  local __aegis_status=$?
  builtin printf '\e]133;D;%s\a\e]133;A\a' "$__aegis_status"
  return $__aegis_status
}
__aegis_preexec() {
  local __aegis_cmd=$1
  __aegis_cmd=${__aegis_cmd//$'\a'/}
  __aegis_cmd=${__aegis_cmd//$'\e'/}
  builtin printf '\e]133;E;%s\a\e]133;C\a' "$__aegis_cmd"
}
__aegis_prompt() {
  [[ "$PS1" == *'133;B'* ]] || PS1="$PS1"$'%{\e]133;B\a%}'
}
precmd_functions=(__aegis_precmd ${precmd_functions[@]:#__aegis_(precmd|prompt)} __aegis_prompt)
preexec_functions=(${preexec_functions[@]:#__aegis_preexec} __aegis_preexec)
"""

FALLBACK_WRAP = "printf '\\033]133;C\\007'; {{ {cmd}\n}}; printf '\\033]133;D;%d\\007\\033]133;A\\007' $?\n"


@frozen
class Launch:
    """How to start a shell: ``argv``, extra ``env``, and whether it prints markers by itself."""

    argv: list[str]
    env: dict[str, str]
    integrated: bool
    kind: str  # bash | zsh | other


def shell_kind(shell: str) -> str:
    name = os.path.basename(shell)
    if name in ("bash", "zsh"):
        return name
    return "other"


def prepare(shell: str, folder: Path) -> Launch:
    """Write the integration files under ``folder`` (0700) and say how to start ``shell``."""
    kind = shell_kind(shell)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if kind == "bash":
        rc = folder / "bashrc"
        rc.write_text(BASH_RC)
        return Launch([shell, "--rcfile", str(rc), "-i"], {}, True, kind)
    if kind == "zsh":
        zd = folder / "zsh"
        zd.mkdir(exist_ok=True, mode=0o700)
        for file in (".zshenv", ".zprofile", ".zlogin"):
            (zd / file).write_text(_ZSH_SOURCE.replace("{file}", file))
        (zd / ".zshrc").write_text(ZSH_RC)
        env = {"ZDOTDIR": str(zd)}
        if os.environ.get("ZDOTDIR"):
            env["AEGIS_USER_ZDOTDIR"] = os.environ["ZDOTDIR"]
        return Launch([shell, "-i"], env, True, kind)
    return Launch([shell, "-i"], {}, False, kind)


def command_bytes(cmd: str, *, integrated: bool) -> bytes:
    """The bytes typed into the shell to run ``cmd`` as one command (see the module docstring)."""
    cmd = cmd.rstrip("\n")
    if not integrated:
        return FALLBACK_WRAP.format(cmd=cmd).encode()
    if "\n" in cmd:
        return ("{ " + cmd + "\n}\n").encode()
    return (cmd + "\n").encode()
