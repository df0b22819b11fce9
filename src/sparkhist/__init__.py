"""sparkhist: a resilient, fast Spark History Server.

Data flows one way: source -> reader -> events -> state -> store -> api.
"""

__version__ = "0.1.0"

#: The Spark History Server release sparkhist answers as: ``/api/v1/version``, and every
#: difference between releases' answers (``sparkhist.releases``). The one switch: 4.3.0,
#: the current release and the dev pin of pyspark (the reference the tests compare with).
SPARK_VERSION = "4.3.0"
