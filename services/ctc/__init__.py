"""The shared CTC backend: any transformers CTC model (wav2vec2, w2v-BERT, ...) on the core."""
