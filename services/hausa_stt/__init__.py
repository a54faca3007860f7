"""hausa_stt: Hausa long-form speech on the shared CTC backend (w2v-BERT 2.0 by default)."""
