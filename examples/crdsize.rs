fn main() {
    for crd in job_template_run::crd::manifests() {
        let y = job_template_run::crd::to_yaml(&crd).unwrap();
        println!("{} {}", job_template_run::crd::crd_file_name(&crd), y.len());
        std::fs::write(
            format!("/tmp/{}", job_template_run::crd::crd_file_name(&crd)),
            y,
        )
        .unwrap();
    }
}
