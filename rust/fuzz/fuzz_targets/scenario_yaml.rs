//! The scenario loader: bytes as a scenario file (UTF-8 check, YAML within the budget,
//! validation); a scenario that loads is written back and must load again to the same
//! scenario, and its offered load and network (addresses, paths, flows, distances) derive.
#![no_main]

use lambdaroute_scenario::Scenario;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = lambdaroute_core::text::utf8(data.to_vec()) else {
        return;
    };
    let Ok(scenario) = Scenario::from_yaml(&text, "fuzz.yaml") else {
        return;
    };
    let written = scenario.to_yaml();
    let again = Scenario::from_yaml(&written, "written.yaml").unwrap_or_else(|e| {
        panic!("a loaded scenario, written back, does not load: {e}\n{written}")
    });
    assert_eq!(again, scenario, "written back:\n{written}");
    let _ = scenario.offered_load().to_string();
    let network = scenario.network();
    for s in 0..scenario.switches.len() {
        let _ = network.flows(&scenario, s);
    }
    let _ = network.router_computer_paths(&scenario);
    let _ = network.distance_matrix(&scenario);
});
