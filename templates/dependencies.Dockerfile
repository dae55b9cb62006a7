# The dependencies stage shared by every deployer image: a venv installed from the host's
# wheelhouse with no network, then stripped of what only building or testing needs
# (pip, tests, C/Cython sources, headers, type stubs).
FROM ${base} AS dependencies
COPY wheels/ /tmp/wheels/
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/python -m pip install --no-index --no-cache-dir --disable-pip-version-check \
      --find-links /tmp/wheels -r /tmp/wheels/requirements.txt \
 && /opt/venv/bin/python -m pip uninstall -y --disable-pip-version-check pip setuptools \
 && find /opt/venv -depth -type d -name tests -path '*/site-packages/*/*' -exec rm -rf {} + \
 && find /opt/venv/lib \( -name '*.pyi' -o -name '*.pyx' -o -name '*.pxd' -o -name '*.pxi' \
      -o -name '*.h' -o -name '*.c' -o -name '*.cpp' -o -name '*.hpp' \) -delete \
 && rm -f /opt/venv/bin/activate*
