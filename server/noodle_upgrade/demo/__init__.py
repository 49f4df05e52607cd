"""``noodle demo``: a NoodleCore-like compiler and VM, upgraded live under load.

- :mod:`~noodle_upgrade.demo.components`: the components' releases (sources as strings);
- :mod:`~noodle_upgrade.demo.toolchain`: the application wiring them through handles;
- :mod:`~noodle_upgrade.demo.loadgen`: the concurrent load and its independent checker;
- :mod:`~noodle_upgrade.demo.steps`: the story, one step per operator action, walking
  every strategy (immediate, canary, shadow, gradual, rolling, blue-green);
- :mod:`~noodle_upgrade.demo.monitor`: the engine's events, as the live state of each
  rollout and a log;
- :mod:`~noodle_upgrade.demo.report`: what was measured; :mod:`~noodle_upgrade.demo.view`:
  how it is shown.
"""

from noodle_upgrade.demo.app import run_demo

__all__ = ["run_demo"]
