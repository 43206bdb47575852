// The node database schema (parley.db), as ordered migrations. Documented in spec/storage.md.
#pragma once

#include <vector>

#include "parley/store/database.h"

namespace parley::store {

const std::vector<Migration>& node_migrations();

}  // namespace parley::store
