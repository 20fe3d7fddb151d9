"""The one packaging step pyproject.toml cannot express: the site's templates/ and static/.

The repository keeps them at its top level, where a reader looks for them. A built wheel
carries copies in docqa/site/, where settings.py looks when docqa runs from an installed
package rather than a checkout (not as the app's own templates/: those would rank below
django.contrib.admin's and lose the admin overrides). Everything else is in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SITE_DIRS = ("templates", "static")


class BuildPyWithSite(build_py):
    def run(self):
        super().run()
        if self.editable_mode:  # an editable install reads them from the checkout itself
            return
        for name in SITE_DIRS:
            target = Path(self.build_lib) / "docqa" / "site" / name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(Path(__file__).parent / name, target)


setup(cmdclass={"build_py": BuildPyWithSite})
