"""The Aegis test kit, a distribution of its own so that the kernel wheel carries no test code.

- :mod:`aegis_testkit.pytest_plugin`: the pytest plugin (entry point ``pytest11: aegis``) with the
  ``kernel``, ``make_kernel``, ``aegis_project``, ``write_config``, ``write_overlay``,
  ``register_plugin`` and ``fake_model`` fixtures;
- :mod:`aegis_testkit.fakemodel`: :class:`~aegis_testkit.fakemodel.FakeModelServer`.
- :mod:`aegis_testkit.serve`: :class:`~aegis_testkit.serve.ServeProcess`, a real ``aegis serve``
  subprocess for end-to-end tests.

Import the submodules; this package imports nothing so that loading the pytest plugin stays cheap.
The in-memory ``FakeDriver`` lives in :mod:`aegis_kernel.testing` (no pytest needed).
"""
