"""The WooCommerce plugin's own PHPUnit suite (WordPress core, MariaDB, WooCommerce fakes) and
PHP's lint over every PHP file of the plugin, run as part of the Python suite."""

from __future__ import annotations

import re
import subprocess

from wordpress_shop import PLUGIN

#: The PHP version the plugin promises (its header's "Requires PHP").
MIN_PHP = "8.1"


def test_every_php_file_of_the_plugin_passes_php_lint(php: str) -> None:
    """`php -l` finds no syntax error in any PHP file of the plugin, its tests included."""
    files = sorted(PLUGIN.rglob("*.php"))
    assert len(files) > 10
    failed = []
    for path in files:
        run = subprocess.run([php, "-l", str(path)], capture_output=True, text=True, timeout=60)
        if run.returncode != 0:
            failed.append(f"{path}: {run.stdout}{run.stderr}")
    assert not failed, "\n".join(failed)


def test_the_plugin_header_states_its_requirements() -> None:
    """WordPress reads the plugin's requirements from its main file's header."""
    header = (PLUGIN / "tagless.php").read_text()
    assert re.search(rf"Requires PHP:\s+{re.escape(MIN_PHP)}\b", header)
    assert re.search(r"Requires at least:\s+6\.1\b", header)
    assert re.search(r"WC requires at least:\s+8\.0\b", header)


def test_phpunit_suite_passes(php: str) -> None:
    """The plugin's PHPUnit tests pass against WordPress core and the local MariaDB."""
    run = subprocess.run(
        ["phpunit", "--configuration", str(PLUGIN / "tests" / "phpunit.xml.dist")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=PLUGIN / "tests",
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert re.search(r"^OK \(\d+ tests?, \d+ assertions?\)$", run.stdout, re.M), run.stdout[-2000:]
