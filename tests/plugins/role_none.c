/*
 * role_none.c - test plugin for declared roles: a plugin that declares
 * none
 *
 * ABI feature: `roles` in the descriptor, present and 0.  Unlike a 1.0
 * plugin (abi_old.c, whose descriptor stops before `roles` and whose
 * roles are therefore unknown), this one says for certain that it never
 * takes a message, so a chain of only role_none plugins gets the
 * "every message would get 451" warning.  It has no hooks: the host
 * answers its messages 451 4.3.0, which is what the warning predicts.
 */
#include <smtphook.h>

SH_PLUGIN_DEFINE(
	.name = "role_none",
	.version = "1.0",
	.roles = 0,
);
