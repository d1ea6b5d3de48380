"""DMControl and Meta-World evaluation envs on a numpy reset/step protocol with TD-MPC2's conventions; ``make_env``
(``registry.py``) builds one task or a multitask set."""
