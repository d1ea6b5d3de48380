"""PWM's pedagogical experiments: the ball–wall smoothness table and gradient ESNR vs horizon (docs/pedagogy.md)."""
