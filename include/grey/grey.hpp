// grey/grey.hpp — everything a program needs to run a Grey proxy or SMTP server.
#pragma once

#include "concrete_mail_handler.hpp"
#include "config.hpp"
#include "error.hpp"
#include "mail_handler.hpp"
#include "protocol.hpp"
#include "result.hpp"
#include "server_core.hpp"
#include "smtp/reply.hpp"
#include "verdict.hpp"
