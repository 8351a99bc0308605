from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        from celery.signals import task_postrun, task_prerun

        from . import task_runs

        # Every process that runs tasks (the Celery workers; eager tasks in tests) notes the last
        # run of each scheduled task for the Pipeline page and /metrics.
        task_prerun.connect(task_runs.on_prerun, weak=False, dispatch_uid="ops.task_runs.prerun")
        task_postrun.connect(task_runs.on_postrun, weak=False, dispatch_uid="ops.task_runs.postrun")
