"""The ModelDeployment controller: ``analysis`` (PromQL and verdicts) and ``canary`` (the rollout
state machine) are pure; builders, reconcile and handlers follow the FineTuneJob controller.
"""
