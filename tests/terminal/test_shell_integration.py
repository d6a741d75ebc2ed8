"""Shell integration in real bash and zsh: the user's rc files keep working (their own PROMPT_COMMAND
array or string, precmd/preexec arrays), commands are cut by OSC 133 markers, OSC sequences a command
prints never reach its record, a command of several lines is one command, and a shell with no
integration gets markers printed around each run."""

from __future__ import annotations

import shutil

import pytest
from terminal_testkit import call, wait_until

pytestmark = pytest.mark.trio

SHELLS = [pytest.param(sh, marks=pytest.mark.skipif(not shutil.which(sh), reason=f"{sh} is not installed "
                                                     "(.ci/run installs zsh from Debian packages)"))
          for sh in ("bash", "zsh")]

OSC_OUTPUT = r"printf 'before\033]0;a title\007 \033]8;;http://example.com\033\\link\033]8;;\033\\ after\n'"


@pytest.mark.parametrize("shell", SHELLS)
async def test_runs_are_cut_by_markers_with_exit_codes_and_clean_output(fake, kernel, shell):
    await call(kernel, "aegis_term_spawn", name="t", shell=shell)
    first = await call(kernel, "aegis_term_run", name="t", cmd="printf 'x\\n'; (exit 3)", timeout_s=60)
    assert (first["seq"], first["exit"], first["output"], first["who"]) == (1, 3, "x", "user")
    osc = await call(kernel, "aegis_term_run", name="t", cmd=OSC_OUTPUT, timeout_s=60)
    assert (osc["seq"], osc["exit"], osc["output"]) == (2, 0, "before link after")
    multi = await call(kernel, "aegis_term_run", name="t", cmd="echo one\nfalse\necho two", timeout_s=60)
    assert (multi["seq"], multi["exit"], multi["output"]) == (3, 0, "one\ntwo")
    env = await call(kernel, "aegis_term_run", name="t", cmd='echo "$AEGIS_TERM"; pwd', timeout_s=60)
    assert env["output"].splitlines()[0] == "t"
    assert env["output"].splitlines()[1] == str(kernel.project_dir.resolve())


async def test_a_bash_user_rc_with_its_own_prompt_command_array_keeps_running(fake, kernel, tmp_path):
    home = tmp_path / "home"
    (home / ".bashrc").write_text('count=0\nPROMPT_COMMAND=(\'count=$((count+1))\' \'echo "$count" > "$HOME/prompts"\')\n'
                                  'alias hello="echo hello from the rc"\n')
    await call(kernel, "aegis_term_spawn", name="t", shell="bash")
    out = await call(kernel, "aegis_term_run", name="t", cmd="hello; (exit 4)", timeout_s=60)
    assert (out["exit"], out["output"]) == (4, "hello from the rc")
    await wait_until(lambda: (home / "prompts").exists() and int((home / "prompts").read_text() or 0) >= 2)
    # still an array, ours first and last, the user's in between
    decl = await call(kernel, "aegis_term_run", name="t", cmd="declare -p PROMPT_COMMAND", timeout_s=60)
    assert decl["output"].startswith("declare -a PROMPT_COMMAND=([0]=\"__aegis_precmd\"")
    assert decl["output"].endswith('[1]="count=\\$((count+1))" [2]="echo \\"\\$count\\" > \\"\\$HOME/prompts\\"" '
                                   '[3]="__aegis_prompt")')


async def test_a_bash_user_rc_with_a_prompt_command_string(fake, kernel, tmp_path):
    home = tmp_path / "home"
    (home / ".bashrc").write_text('PROMPT_COMMAND=\'echo tick >> "$HOME/ticks";\'\n')  # a trailing ';' (pyenv's)
    await call(kernel, "aegis_term_spawn", name="t", shell="bash")
    out = await call(kernel, "aegis_term_run", name="t", cmd="(exit 5)", timeout_s=60)
    assert out["exit"] == 5 and out["output"] == ""
    await wait_until(lambda: (home / "ticks").exists() and len((home / "ticks").read_text().split()) >= 2)


@pytest.mark.skipif(not shutil.which("zsh"), reason="zsh is not installed (.ci/run installs it)")
async def test_zsh_user_precmd_and_preexec_arrays_keep_running(fake, kernel, tmp_path):
    home = tmp_path / "home"
    (home / ".zshenv").write_text('export FROM_ZSHENV=yes\n')
    (home / ".zshrc").write_text(
        'mine_pre() { print -r -- "$1" >> "$HOME/preexec.log" }\n'
        'mine_cmd() { print -r -- "prompt" >> "$HOME/precmd.log" }\n'
        'preexec_functions=(mine_pre)\nprecmd_functions=(mine_cmd)\nalias hello="echo hello from zshrc"\n')
    await call(kernel, "aegis_term_spawn", name="t", shell="zsh")
    out = await call(kernel, "aegis_term_run", name="t", cmd='hello; echo "$FROM_ZSHENV"; (exit 6)', timeout_s=60)
    assert (out["exit"], out["output"]) == (6, "hello from zshrc\nyes")
    assert 'hello; echo "$FROM_ZSHENV"; (exit 6)' in (home / "preexec.log").read_text()
    await wait_until(lambda: (home / "precmd.log").exists() and len((home / "precmd.log").read_text().split()) >= 2)
    zdot = await call(kernel, "aegis_term_run", name="t", cmd='echo "${ZDOTDIR:-$HOME}"', timeout_s=60)
    assert zdot["output"] == str(home)  # the user's, once their .zshrc has run


@pytest.mark.parametrize("shell", SHELLS)
async def test_a_command_typed_with_keys_is_recorded_with_its_text_and_typist(fake, kernel, shell):
    await call(kernel, "aegis_term_spawn", name="t", shell=shell)
    await call(kernel, "aegis_term_run", name="t", cmd="true", timeout_s=60)  # the shell is at its prompt
    await call(kernel, "aegis_term_keys", name="t", keys="echo typed; (exit 2){enter}")
    from aegis_terminal.runtime import TerminalRuntime

    term = kernel.service(TerminalRuntime).terminals["t"]
    await wait_until(lambda: len(term.history) == 2)
    rec = term.history[-1]
    assert (rec["cmd"], rec["who"], rec["exit"], rec["output"]) == ("echo typed; (exit 2)", "user", 2, "typed")


async def test_a_shell_without_integration_gets_markers_around_each_run(fake, kernel):
    sh = shutil.which("dash") or shutil.which("sh")
    spawned = await call(kernel, "aegis_term_spawn", name="t", shell=sh)
    assert spawned["integrated"] is False
    out = await call(kernel, "aegis_term_run", name="t", cmd="echo plain; (exit 7)", timeout_s=60)
    assert (out["seq"], out["exit"], out["output"]) == (1, 7, "plain")
    two = await call(kernel, "aegis_term_run", name="t", cmd="echo a\necho b", timeout_s=60)
    assert (two["seq"], two["exit"], two["output"]) == (2, 0, "a\nb")
