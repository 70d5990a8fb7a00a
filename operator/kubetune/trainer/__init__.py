"""The trainer: runs inside the trainer image and in-process in local mode (data, methods/,
loop, evaluate, export). Never imports kopf or the controllers; heavy dependencies come from
the ``trainer`` extra.
"""
