"""Pure logic of the voice agent: values, decisions and state machines. No I/O, no threads."""
