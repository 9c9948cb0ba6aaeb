//! Image ids: an image strata made and saved is the same image in docker, and one docker
//! made and saved is the same image in strata.

use crate::common::{Env, tomcat_rootfs};

#[test]
fn image_ids_agree_both_ways() {
    let Some(docker) = strata_testkit::docker() else { return };
    let env = Env::new();
    tomcat_rootfs(&env.path("rootfs"));
    let repo = docker.unique("strata-ids");
    let tag = format!("{repo}:1");
    env.ok(&["import", "rootfs", &tag, "-c", "CMD [\"catalina.sh\", \"run\"]"]);
    let id = env.image_id(&tag);
    env.ok(&["save", &tag, "-o", "out.tar"]);
    let loaded = docker.load(&env.path("out.tar"));
    assert!(loaded.contains(&format!("Loaded image: {tag}")), "{loaded}");
    assert_eq!(docker.inspect(&tag)["Id"], id.as_str());

    // docker commit on top of it, saved by docker, loaded by strata: same id again.
    let ctr = docker.unique("strata-ids-ctr");
    let tag2 = format!("{repo}:2");
    docker.ok(&["create", "--name", &ctr, &tag, "true"]);
    docker.ok(&["commit", "-m", "msg", "-a", "someone", &ctr, &tag2]);
    let id2 = docker.inspect(&tag2)["Id"].as_str().unwrap().to_owned();
    docker.save(&[&tag2], &env.path("docker.tar"));
    env.ok(&["load", "-i", "docker.tar"]);
    assert_eq!(env.image_id(&tag2), id2);
    docker.cleanup(&[&tag2, &tag], &[&ctr]);
}
