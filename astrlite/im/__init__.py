"""POST /api/v1/im/message: proactive messages to webchat sessions and real bot platforms."""
