"""arabic_words: short Arabic clips, transcribed or scored against expected phrases."""
