#pragma once
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include <libelf.h>
#include <gelf.h>
