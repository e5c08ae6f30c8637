"""The course wing, for instructors: build an nbgrader course from the stages, grade a class, export grades.

release.py builds the course folder and its releases; autograde.py grades a class through nbgrader (the
verdicts come from lil_transformy.grading.judge); gradebook.py talks to nbgrader's gradebook; feedback.py
writes what instructors and students read; report.py the class report (similarity.py: whose work looks alike);
demo.py proves it end to end.
"""
from lil_transformy.course.autograde import grade_class
from lil_transformy.course.demo import demo, hand_in
from lil_transformy.course.gradebook import export
from lil_transformy.course.release import build, stage_modules
from lil_transformy.course.report import class_report

__all__ = ["build", "class_report", "demo", "export", "grade_class", "hand_in", "stage_modules"]
