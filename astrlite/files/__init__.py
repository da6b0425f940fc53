"""Attachments: multipart uploads, ranges, safe file names, content sniffing, the store on
disk."""

# The kinds of attachment (AstrBot's message part types for media), in the wire's order.
MEDIA_KINDS = ("image", "record", "file", "video")
