//! `MemoryCache` against the contract (its eviction is unit-tested beside it).

use imagemcp_core::contract;
use imagemcp_local::MemoryCache;

#[tokio::test]
async fn memory_cache_meets_the_contract() {
    contract::cache_suite(async |clock| MemoryCache::new(100, clock).unwrap()).await;
}
