// The node database schema (parley.db), as ordered migrations. Documented in spec/storage.md.
#pragma once

#include <functional>
#include <vector>

#include "parley/store/database.h"

namespace parley::store {

const std::vector<Migration>& node_migrations();

// Brings a node database up to date: a new file is created with auto_vacuum = INCREMENTAL (so
// a retention purge can give space back to the file system); a file from before that is
// converted once with VACUUM (logged by the caller through `converting`); then the migrations.
Status migrate_node_database(Database& db, const std::function<void()>& converting = {});

}  // namespace parley::store
