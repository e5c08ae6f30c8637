"""The graded checks, one folder per stage. Importing the course first sets how torch's threads wait
(lil_transformy/__init__.py), before checks/conftest.py imports torch."""
import lil_transformy  # noqa: F401
