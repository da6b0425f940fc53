"""Reply providers: echo, scripted and openai, behind one async-iterator interface."""
