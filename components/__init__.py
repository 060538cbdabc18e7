"""One ComponentResource per concept, type token ``hybrid:<module>:<Class>``.

A concept with one class per cloud (``AwsEncryptedBucket`` and ``GcpEncryptedBucket``)
registers both under the concept's token, ``hybrid:<module>:<Concept>``: a URN names its
type, and each child's URN its parent's, so a token per class would move every resource
that already exists.
"""
