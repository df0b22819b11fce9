"""sparkhist: a resilient, fast Spark History Server.

Data flows one way: source -> reader -> events -> state -> store -> api.
"""

__version__ = "0.1.0"

#: The Spark History Server release sparkhist answers as: ``/api/v1/version``, and every
#: difference between releases' answers (``sparkhist.releases``). The one switch: 4.0.1
#: until the reference (the dev pin of pyspark) moves to 4.3.0.
SPARK_VERSION = "4.0.1"
