from celery.signals import task_postrun, task_prerun
from django.apps import AppConfig

from docqa.ops.logs import task_finished, task_started


class OpsConfig(AppConfig):
    name = "docqa.ops"
    label = "ops"

    def ready(self) -> None:
        # Log lines a Celery task writes carry its id (weak=False: the functions live on).
        task_prerun.connect(task_started, weak=False, dispatch_uid="docqa.ops.task_started")
        task_postrun.connect(task_finished, weak=False, dispatch_uid="docqa.ops.task_finished")
