"""What answers: the local engine or an OpenAI-compatible server, behind one engine client."""
