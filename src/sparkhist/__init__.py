"""sparkhist: a resilient, fast Spark History Server.

Data flows one way: source -> reader -> events -> state -> store -> api.
"""

__version__ = "0.1.0"

#: The Spark version sparkhist answers as on ``/api/v1/version``.
SPARK_VERSION = "4.0.1"
